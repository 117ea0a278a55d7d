"""A generation's steps after Confirm, as the jobs actor (actors/kie_poller.py) drives them.

The actor keeps the scheduling, the lease and the mailbox; each step is a module a reader can
hold in their head, and each rule of the jobs path lives in one of them:

* :mod:`~generation.context`: what every step shares (the clients, the lease, the counters);
* :mod:`~generation.track`: what the process remembers of a job between steps, and the pacing;
* :mod:`~generation.inputs`: the user's files fetched from Telegram, measured, uploaded to KIE;
* :mod:`~generation.submit`: createTask under a committed intent, and what its failure means;
* :mod:`~generation.follow`: recordInfo polls and callbacks (wake-ups), KIE's verdict;
* :mod:`~generation.status`: the status message the user watches;
* :mod:`~generation.deliver`: the end: the result sent file by file, or the apology, and the money;
* :mod:`~generation.sending`: one result into the chat as its kind, with Telegram's fallbacks;
* :mod:`~generation.results`: what a result is apart from any chat (kept, read back, summed up).
"""
