/*
 * The worker process: runs a shard of the fleet's devices with one paho
 * MQTTAsync instance, driven by the coordinator over the protocol in
 * workers/protocol.h. Started by the coordinator as the hidden subcommand
 * `policylag [--log-level LEVEL] worker --fd N` with one end of a socketpair
 * as descriptor N (default 3).
 */
#ifndef PL_WORKER_WORKER_H
#define PL_WORKER_WORKER_H

/*
 * Runs the worker on the connected stream socket fd until the coordinator
 * sends PHASE drain and every device has disconnected, or closes fd.
 * Returns a process exit status: 0 after DONE, 3 on a runtime failure.
 */
int worker_run(int fd);

/* Entry point of the hidden `worker` subcommand; argv[0] is "worker". */
int worker_main(int argc, char **argv);

#endif
