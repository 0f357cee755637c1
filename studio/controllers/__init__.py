"""Controllers: the objects that own processes, requests, state and persistence for the views.

What may live here: QObjects that start and follow engine processes (training runs, prepare jobs,
inference workers), hold the state of a request in flight, decide what an action may do right now and
read or write the files behind it (through studio.workspace and core.layout). Views talk only to these:
they render a controller's state, listen to its signals and emit `*_requested` intents that the main
window routes here. Process plumbing (QProcess wrappers, the engine command) stays in studio.engine;
pure computations stay in Qt-free modules (studio.workspace, core).
"""
