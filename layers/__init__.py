"""CDKTF layers: one module per layer, plus the shared base and config."""
