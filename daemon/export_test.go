package daemon

import "fmt"

// DropLink closes the link to cluster/node abruptly, as a network failure
// would (no GoAway).
func (d *Daemon) DropLink(cluster, node string) bool {
	p := d.peer(cluster, node)
	if p == nil {
		return false
	}
	l := p.currentLink()
	if l == nil {
		return false
	}
	l.fail(fmt.Errorf("link dropped on purpose"))
	return true
}
