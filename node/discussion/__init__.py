"""Discussion threads under proposals and offers: members comment and reply; comments
federate as Notes and come from other servers only as their origin published them; the
admin hides or removes them, and members and other servers report them."""
