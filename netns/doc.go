// Package netns is the home of berth's container networking. Each
// subpackage has one job, so the container lifecycle can call them in
// order:
//
//   - nsfile: a network namespace kept as a file (bind mount of nsfs),
//     and running code inside one on a locked thread;
//   - ipam: address leases per network, persisted and safe across
//     processes;
//   - link: the bridge, veth pairs and the container side's addresses;
//   - nft: berth's own nftables table (masquerade, published ports as map
//     elements);
//   - etcfiles: /etc/hostname, /etc/hosts and /etc/resolv.conf for a
//     container, and rewriting a bind-mounted file in place.
//
// The top-level package network composes them into the use cases:
// network definitions, and a container's Setup and Teardown.
package netns
