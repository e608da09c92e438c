"""`kubelab ui`: a live, read-only web view of the lab.

- `view`: pure view-models: API objects -> map model -> Graphviz DOT; timeline rows -> chart;
  a proxy table -> lines tagged with the Services they belong to; query validation.
- `graphviz`: the one I/O edge of drawing: DOT text on stdin of Debian's `dot -Tsvg`.
- `hub`: one informer per resource for the whole server, fanned out to every browser (SSE).
- `server`: the FastAPI app (GET only; loopback Host names only) and its pages.

It reads the cluster through `kubelab.client` and reuses `kubelab.lab`'s trace/timeline
helpers; it imports no other component package.
"""
