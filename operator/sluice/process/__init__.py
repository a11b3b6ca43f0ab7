"""Layer 2: the client of the pipeline-process API (mint tokens, completion status, the
completion frontier stream, stats), shared by the gateway and the operator so both take the
same code path to a pipeline pod."""
