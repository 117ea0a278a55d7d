"""The fake KIE (jobs API and dedicated families), in parts; import it from :mod:`fakes.kie_api`.

* :mod:`~fakes.kie.wire`: paths, models, task states, and the records kept (calls, plans, faults, tasks);
* :mod:`~fakes.kie.world`: credits, tasks and files, and the task simulation (states, results, callbacks);
* :mod:`~fakes.kie.results`: a finished task's files (a picture in the frame asked for, a real clip, a
  real sound; the clips and the sound shipped in ``media/``, made once by ``media/make_media.sh``);
* :mod:`~fakes.kie.routes`: the HTTP routes, the recording and faulting middleware, KIE's envelopes;
* :mod:`~fakes.kie.families`: the dedicated families' wire format (Veo, Suno and its lyrics, Runway,
  Aleph, 4o Image, Flux Kontext): body rules, records, callbacks, odd shapes included;
* :mod:`~fakes.kie.dedicated`: their routes and task simulation (Suno's stages, Veo's 1080p and 4K);
* :mod:`~fakes.kie.fake`: :class:`FakeKie`, the steering and observing API tests use.
"""
