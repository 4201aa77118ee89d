"""Fixtures shared by the test suite."""

import ssl

import pytest
import trustme


@pytest.fixture(scope="session")
def tls_contexts():
    """A server and a client SSL context trusting a throwaway CA; 127.0.0.1 and localhost."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    return server_context, client_context
