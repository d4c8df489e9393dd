"""``fleetsim bridge``: the difference in a metric between two scenarios, split into steps that
each change one group of fields (:mod:`.core`), run on the sweep machinery (:mod:`.run`)."""
