"""fleetsim: a discrete-event simulator of LLM serving on fleets of NVIDIA H100 nodes.

Dependency direction (nothing points the other way):

    physics (timing, power, memory)  <-  engine (router, batching, replica, fleet)  <-  cli
    workload (lengths, arrivals)     <-/
    scenario (schema, loading)       <-  everything that reads a scenario
"""

__version__ = "0.1.0"
