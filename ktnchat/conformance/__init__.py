# The conformance checker: `ktnchat check server HOST:PORT` and `ktnchat check client -- CMD`.
# Rules: standard library only; dialogues are data (scenarios.py), shared with our tests;
# every wait is bounded and every failure is a reported result, never a crash.
