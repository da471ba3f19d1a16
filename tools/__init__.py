"""Project tooling: terraform runner, local emulator, deploy and plan review."""
