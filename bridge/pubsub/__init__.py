"""Google Cloud Pub/Sub for the bridge: the emulator's lifecycle, clients (emulator or Google),
the topic and subscriptions of the event path, the `listen` pull worker and dead-letter tools.
"""
