"""The actors of the tree: the kit every actor is built from (actor, mailbox, backoff, roles) and
one module per actor. An actor holds other actors' mailboxes, never their modules."""
