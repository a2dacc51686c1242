"""Mail: the sender that works through the outbox, and the delivery that hands each mail to a server.

After the rules (which write the outbox, rules/notices.py), before the web
layer. Nothing here runs inside a request: the sender is a thread of its
own in each web worker, or `flask mail send`.
"""
