// Package chaos holds Herald's chaos tests: they build the herald binary
// once, run the broker (`herald serve broker`), the user service and the
// email service as separate processes on loopback, inject faults (SIGKILL
// and restart of one process mid-stream) while users register, and count
// what came out: every registration must give exactly one welcome mail.
// One scenario runs the broker as a JetStream cluster of three processes
// with replicas=3 and SIGKILLs the node leading the user.registered stream.
//
// Each scenario prints one line
//
//	chaos: <scenario> registrations=N published=N mails=N lost=N duplicated=N
//
// and fails unless lost and duplicated are 0. The default sizes keep each
// scenario well under a minute; HERALD_LONG=1 runs 10,000 registrations,
// keeps the email service down the original's full 2 minutes, and runs the
// load test (10,000 registrations at concurrency 64 against `herald up`,
// with the process's peak RSS). The HTTP broker scenario needs an etcd
// (HERALD_TEST_ETCD_URL) and skips, saying so, without one.
//
//	HERALD_TEST_ETCD_URL=etcd://127.0.0.1:2379 go test -race -v ./chaos/
//	HERALD_LONG=1 go test -v -timeout 30m ./chaos/
package chaos
