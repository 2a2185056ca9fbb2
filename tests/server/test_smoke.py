from tests.helpers import Peer


def test_two_clients_chat(server):
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        bob.login("bob")
        alice.send("msg", "hello")
        assert alice.expect_response("message")["content"] == "hello"
        got = bob.expect_response("message")
        assert got["sender"] == "alice" and isinstance(got["timestamp"], str)
