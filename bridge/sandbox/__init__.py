"""Local stand-ins of the registry and of Mender, for the demo, local development and tests.

They implement the services' rules from the API facts on their own and import nothing from the
bridge's core, clients or service, so that the bridge is checked against an independent oracle.
"""
