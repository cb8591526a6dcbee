"""Email: members' verified addresses and their choices, the notifications the node
queues for them (a proposal opened, a reminder, an outcome; follow requests, invitations,
orders and failing peers for the admins), the daily digest, and the outbox a worker
hands to the SMTP server with retries."""
