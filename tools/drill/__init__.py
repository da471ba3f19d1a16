"""The DR drill: both regions' real Lambda code in one process, AWS played around it from the synth.

Modules, one concern each: :mod:`.synth` (what the synthesized stacks say), :mod:`.clock`
(simulated time), :mod:`.world` (moto built from the synth, fault injection, the Lambda control
API), :mod:`.replication` (global tables), :mod:`.runtime` (the handlers of both regions),
:mod:`.esm` (SQS -> Lambda), :mod:`.apigw`, :mod:`.route53`, :mod:`.clients` (clients and the
payment-service-provider stand-in), :mod:`.figures`, :mod:`.report`, :mod:`.scenarios`.
"""
