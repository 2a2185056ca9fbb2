# Several server processes, one chat: the cluster link (Redis) and the worker supervisor.
# Rules: nothing here is imported unless --workers > 1 or --bus is given, so a single
# process needs neither redis-py nor a Redis server.
