// Package resolve turns a service name into the address of one of its live
// instances, through any [registry.Registry], for RPC clients.
//
// A [Resolver] follows one service: it looks the service up once, then
// watches it, so instances that register are used at once and instances
// that leave (deregistered, or their lease ran out after a crash) are
// dropped at once. [Resolver.Pick] spreads calls over the instances round
// robin, skipping for a while ([WithCooldown], 5s by default) an instance
// reported with [Resolver.Failed], because it refused a connection while
// still listed.
//
// A [Transport] is an [http.RoundTripper] for clients that address
// services by name: a request to http://herald.user/path goes to one of the
// instances of the service "herald.user". It keeps a Resolver per service,
// marks an instance that refuses the connection as failed and sends the
// request to another (a request that never reached a server is safe to
// send again). Connect clients use it through their *http.Client:
//
//	client := &http.Client{Transport: &resolve.Transport{Registry: reg}}
//	users := userv1connect.NewUserServiceClient(client, "http://herald.user")
//
// For a client that wants a base URL instead, [Resolver.BaseURL] returns
// the picked instance's.
//
// Resolvers and Transports are safe for concurrent use.
package resolve
