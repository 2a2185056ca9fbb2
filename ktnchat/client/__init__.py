# The ktnchat command-line client: commands, rendering, connection and the two front ends.
# Rules: I/O lives only in connection.py (socket), plain.py and tty.py (terminal);
# commands.py and render.py are pure; session.py holds the client's state machine.
# Entry point: ktnchat.client.main.main (also `python -m ktnchat.client`).
