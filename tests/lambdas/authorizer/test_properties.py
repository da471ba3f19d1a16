"""Property: whatever the Authorization header, the authorizer answers a policy (never raises) and denies
anything that is not a valid key; header text never reaches a log line."""

from __future__ import annotations

from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments_common import credentials

from tests.lambdas.authorizer.conftest import allowed, authorizer_event
from tests.lambdas.conftest import PRIMARY, Aws, FakeContext, load_handler

headers = st.one_of(
    st.text(max_size=300),
    st.builds(lambda s: f"Bearer {s}", st.text(max_size=120)),
    st.builds(
        lambda suffix, key_id, secret: f"Bearer pdr_{suffix}_{key_id}.{secret}",
        st.sampled_from(["test", "prod", "TEST", ""]),
        st.text("0123456789abcdef", min_size=15, max_size=17),
        st.text("abcXYZ_-019", min_size=42, max_size=44),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=headers)
def test_any_header_is_denied_without_raising_and_never_logged(aws: Aws, logs: list[str], header: str) -> None:
    authorizer: ModuleType = load_handler("authorizer", PRIMARY)
    logs.clear()
    answer = authorizer.handler(authorizer_event(header), FakeContext())
    assert not allowed(answer)
    own = [line for line in logs if line.startswith("{")]
    parsed = credentials.parse(credentials.bearer(header))
    if parsed is not None:
        assert all(parsed.secret not in line for line in own)
    # "Bearer" appears in no log line of the function, so no header value that starts with it can.
    if header.startswith("Bearer "):
        assert all(header.strip() not in line for line in own)
