"""Code shared by the payment Lambdas, zipped at the root of every function's package.

Import the modules you need (``from payments_common import config``): this package
imports nothing itself, so a function pays only for what it uses at cold start.
"""
