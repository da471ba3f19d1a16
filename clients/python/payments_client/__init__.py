"""A small client for the payments API that follows its failover contract (stdlib only).

from payments_client import PaymentsClient
client = PaymentsClient("https://api.dev.payments.example.com", api_key=os.environ["PAYMENTS_API_KEY"])
payment = client.create_payment(amount="10.50", currency="USD", merchant_id="acme", card_token="tok_visa_4242")
client.get_payment(payment["payment_id"])
"""

from payments_client.client import RETRY_STATUSES, PaymentsClient, PaymentsError

__all__ = ["RETRY_STATUSES", "PaymentsClient", "PaymentsError"]
