// Package gossip is a node's view of its own cluster: which nodes of the
// cluster are alive, suspect, dead or gone, and the link addresses each
// one announces. It runs hashicorp/memberlist (SWIM failure detection with
// suspicion and indirect probes) with the cluster's secret key, so gossip
// is encrypted and authenticated, and refuses what does not belong: nodes
// of another cluster, a second node under a live node's name, packets
// sealed with another key, and joins beyond a rate. Seeds may be DNS names
// (a Kubernetes headless service resolves to every pod); they are
// re-resolved and joined again on an interval.
//
// It has one job: membership of this node's own cluster. It dials no link
// and trusts no address it learns for more than a place to dial.
package gossip
