package configs

// Tests that keep the packaging examples (examples/three-cluster, systemd,
// kubernetes, grafana) working and in sync with the config parser and the
// daemon's metrics.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// ---- examples/three-cluster ----------------------------------------------

// loadThreeCluster copies the three-cluster example into a temporary
// directory, writes the <node>.pub files the README's keygen commands
// would, and parses every config. It returns the configs by node name and
// each node's public key.
func loadThreeCluster(t *testing.T) (map[string]*Config, map[string]ed25519.PublicKey) {
	t.Helper()
	src := filepath.Join("examples", "three-cluster")
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("%s has %d YAML files, want 3: %v", src, len(files), files)
	}
	dir := t.TempDir()
	keys := map[string]ed25519.PublicKey{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		writeFile(t, dir, name, string(data))
		node := strings.TrimSuffix(name, ".yaml")
		pub, text := newKey(t)
		keys[node] = pub
		writeFile(t, dir, node+".pub", "# "+node+", from wandistd keygen\n"+text+"\n")
	}
	configs := map[string]*Config{}
	for node := range keys {
		path := filepath.Join(dir, node+".yaml")
		c, err := Parse(mustRead(t, path), path)
		if err != nil {
			t.Fatalf("%s.yaml: %v", node, err)
		}
		if c.Node != node {
			t.Errorf("%s.yaml: node = %q, want the file's name", node, c.Node)
		}
		if want := filepath.Join(dir, node+".key"); c.Identity != want {
			t.Errorf("%s.yaml: identity = %q, want %q", node, c.Identity, want)
		}
		if want := filepath.Join(dir, "run", node+".sock"); c.Local.Socket != want {
			t.Errorf("%s.yaml: local.socket = %q, want %q", node, c.Local.Socket, want)
		}
		configs[node] = c
	}
	return configs, keys
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func peerEntry(c *Config, node string) *Peer {
	for i := range c.Peers {
		if c.Peers[i].Node == node {
			return &c.Peers[i]
		}
	}
	return nil
}

func dials(p *Peer) bool { return p.Mode == ModeConnect || p.Mode == ModeBoth }

// listenAddr is where c accepts links over transport.
func listenAddr(c *Config, transport string) string {
	if transport == TransportTCP {
		return c.Listen.TCP
	}
	return c.Listen.QUIC
}

func TestThreeClusterExample(t *testing.T) {
	configs, keys := loadThreeCluster(t)
	nodes := make([]string, 0, len(configs))
	for n := range configs {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)

	// Every peer entry names one of the other two nodes, with its cluster,
	// and pins exactly that node's key.
	for _, n := range nodes {
		c := configs[n]
		if len(c.Peers) != len(nodes)-1 {
			t.Errorf("%s has %d peers, want %d (a full triangle)", n, len(c.Peers), len(nodes)-1)
		}
		for _, p := range c.Peers {
			other, ok := configs[p.Node]
			if !ok {
				t.Errorf("%s: peer %s/%s is none of the three nodes %v", n, p.Cluster, p.Node, nodes)
				continue
			}
			if p.Cluster != other.Cluster {
				t.Errorf("%s: peer %s is in cluster %q, but %s.yaml says %q", n, p.Node, p.Cluster, p.Node, other.Cluster)
			}
			if len(p.PublicKeys) != 1 || !p.PublicKeys[0].Equal(keys[p.Node]) {
				t.Errorf("%s: peer %s pins %d keys, want exactly %s.pub's", n, p.Node, len(p.PublicKeys), p.Node)
			}
		}
	}

	// Every pair: each side lists the other, exactly one side dials (the
	// one whose name sorts first), to the other's listen address for the
	// transport it uses, and the other side only accepts.
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			pa, pb := peerEntry(configs[a], b), peerEntry(configs[b], a)
			if pa == nil || pb == nil {
				t.Errorf("%s and %s do not list each other (%v, %v)", a, b, pa != nil, pb != nil)
				continue
			}
			if dials(pa) == dials(pb) {
				t.Errorf("%s—%s: %s mode %q, %s mode %q; want exactly one dialler", a, b, a, pa.Mode, b, pb.Mode)
				continue
			}
			dialler, target, entry, back := a, b, pa, pb
			if dials(pb) {
				dialler, target, entry, back = b, a, pb, pa
			}
			if dialler != a {
				t.Errorf("%s—%s: %s dials, want %s (the smaller name)", a, b, dialler, a)
			}
			if want := listenAddr(configs[target], entry.Transport); want == "" || entry.Address != want {
				t.Errorf("%s dials %s at %q over %s; %s listens for %s on %q", dialler, target, entry.Address, entry.Transport, target, entry.Transport, want)
			}
			if back.Mode != ModeAccept || back.Address != "" {
				t.Errorf("%s's entry for %s: mode %q address %q, want accept-only", target, dialler, back.Mode, back.Address)
			}
		}
	}

	// No two nodes share a port or a socket.
	seen := map[string]string{}
	for _, n := range nodes {
		c := configs[n]
		for _, a := range []string{c.Listen.QUIC, c.Listen.TCP, c.Admin.Listen, c.Local.Socket} {
			if a == "" {
				continue
			}
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s both use %s", other, n, a)
			}
			seen[a] = n
		}
	}

	// east-1 shows the spool and the export rules its README describes.
	east := configs["east-1"]
	if east == nil {
		t.Fatal("no east-1.yaml")
	}
	if east.Spool.Dir == "" {
		t.Error("east-1 has no spool.dir")
	}
	for _, c := range []struct {
		group, cluster string
		want           bool
	}{
		{"orders-eu", "west", true},
		{"inventory", "west", false},
		{"orders-eu", "south", true},
		{"inventory", "south", true},
		{"inventory", "east", true}, // own cluster: always
	} {
		if got := east.Exported(c.group, c.cluster); got != c.want {
			t.Errorf("east-1 exports %q to %s = %v, want %v", c.group, c.cluster, got, c.want)
		}
	}
	for _, n := range []string{"west-1", "south-1"} {
		if configs[n].Exports != nil {
			t.Errorf("%s has exports; the README says only east-1 does", n)
		}
	}
}

// ---- grafana ---------------------------------------------------------------

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

type grafanaDashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// promQueries returns every PromQL text in the dashboard: targets' expr,
// and template variables' query and definition.
func promQueries(v any, key string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			promQueries(x, k, out)
		}
	case []any:
		for _, x := range v {
			promQueries(x, key, out)
		}
	case string:
		if key == "expr" || key == "query" || key == "definition" {
			*out = append(*out, v)
		}
	}
}

var metricNameRE = regexp.MustCompile(`wandist_[a-z_]+`)

func TestGrafanaDashboard(t *testing.T) {
	data := mustRead(t, filepath.Join("grafana", "wandist-dashboard.json"))
	if !json.Valid(data) {
		t.Fatal("wandist-dashboard.json is not valid JSON")
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.SchemaVersion < 36 || dash.UID == "" || dash.Title == "" {
		t.Errorf("schemaVersion %d uid %q title %q", dash.SchemaVersion, dash.UID, dash.Title)
	}
	vars := map[string]string{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["DS_PROMETHEUS"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("template variables %v: want DS_PROMETHEUS (datasource) and instance (query)", vars)
	}

	var panels []grafanaPanel
	for _, p := range dash.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]string{}
	for _, p := range panels {
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q: query %s is empty", p.Title, q.RefID)
			}
		}
	}

	// Every wandist_ metric the dashboard queries is one the daemon
	// registers, by its quoted name in the daemon's source (the daemon's
	// TestDashboardCoversEveryMetric checks the converse).
	files, err := filepath.Glob(filepath.Join("..", "daemon", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var src string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			src += string(mustRead(t, f))
		}
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	var queries []string
	promQueries(generic, "", &queries)
	used := map[string]bool{}
	for _, q := range queries {
		for _, m := range metricNameRE.FindAllString(q, -1) {
			used[m] = true
		}
	}
	for m := range used {
		if !strings.Contains(src, strconv.Quote(m)) {
			t.Errorf("the dashboard queries %s, which the daemon does not define", m)
		}
	}

	// And it shows what an operator needs.
	for _, m := range []string{
		"wandist_link_up", "wandist_link_reconnects_total", "wandist_link_rtt_seconds",
		"wandist_handshake_rejections_total", "wandist_buffer_messages", "wandist_buffer_bytes",
		"wandist_buffer_oldest_seconds", "wandist_buffer_drain_seconds", "wandist_buffer_discards_total",
		"wandist_messages_sent_total", "wandist_messages_received_total", "wandist_messages_delivered_total",
		"wandist_duplicates_dropped_total", "wandist_sends_busy_total", "wandist_spool_bytes",
		"wandist_spool_fsync_seconds_total", "wandist_spool_fsyncs_total", "wandist_local_clients", "wandist_groups",
	} {
		if !used[m] {
			t.Errorf("no panel queries %s", m)
		}
	}
}

// ---- systemd -----------------------------------------------------------------

// unitFile parses a systemd unit into section -> key -> values (a key may
// repeat).
func unitFile(t *testing.T, data []byte) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("wandistd.service:%d: not a key=value line in a section: %q", n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

const (
	unitConfig = "/etc/wandist/wandistd.yaml"
	unitBinary = "/usr/local/bin/wandistd"
)

func TestSystemdUnit(t *testing.T) {
	u := unitFile(t, mustRead(t, filepath.Join("systemd", "wandistd.service")))
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("sections %v: want Unit, Service, Install", u)
	}
	one := func(k string) string {
		if len(svc[k]) != 1 {
			t.Errorf("[Service] %s set %d times, want once", k, len(svc[k]))
			return ""
		}
		return svc[k][0]
	}
	if got, want := one("ExecStart"), unitBinary+" run -c "+unitConfig; got != want {
		t.Errorf("ExecStart=%s, want %s", got, want)
	}
	if got, want := one("ExecStartPre"), unitBinary+" config check -c "+unitConfig; got != want {
		t.Errorf("ExecStartPre=%s, want %s", got, want)
	}
	for k, want := range map[string]string{
		"Type": "simple", "User": "wandist", "Restart": "on-failure", "KillSignal": "SIGTERM",
		"RuntimeDirectory": "wandist", "RuntimeDirectoryMode": "0750", "StateDirectory": "wandist",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "ReadWritePaths": "/var/lib/wandist",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	// The daemon gives up a graceful stop after 15s; systemd must wait longer.
	if d, err := time.ParseDuration(one("TimeoutStopSec")); err != nil || d <= 15*time.Second {
		t.Errorf("TimeoutStopSec=%s: want a duration above 15s (%v)", one("TimeoutStopSec"), err)
	}
	if _, err := time.ParseDuration(one("RestartSec")); err != nil {
		t.Errorf("RestartSec: %v", err)
	}
	if n, err := strconv.Atoi(one("LimitNOFILE")); err != nil || n < 4096 {
		t.Errorf("LimitNOFILE=%s", one("LimitNOFILE"))
	}
	if len(u["Install"]["WantedBy"]) == 0 {
		t.Error("no [Install] WantedBy")
	}
}

// The config in systemd/README.md parses and uses the unit's folders.
func TestSystemdReadmeConfig(t *testing.T) {
	readme := string(mustRead(t, filepath.Join("systemd", "README.md")))
	_, rest, ok := strings.Cut(readme, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("systemd/README.md has no ```yaml block")
	}
	dir := t.TempDir()
	_, key := newKey(t)
	pub := writeFile(t, dir, "west-1.pub", key+"\n")
	block = strings.ReplaceAll(block, "/etc/wandist/west-1.pub", pub)
	c, err := Parse([]byte(block), filepath.Join(dir, "wandistd.yaml"))
	if err != nil {
		t.Fatalf("README config: %v", err)
	}
	if c.Identity != "/etc/wandist/wandistd.key" {
		t.Errorf("identity %q", c.Identity)
	}
	if filepath.Dir(c.Local.Socket) != "/run/wandist" {
		t.Errorf("local.socket %q is not in RuntimeDirectory /run/wandist", c.Local.Socket)
	}
	if !strings.HasPrefix(c.Spool.Dir, "/var/lib/wandist/") {
		t.Errorf("spool.dir %q is not in StateDirectory /var/lib/wandist", c.Spool.Dir)
	}
	if host, _, _ := net.SplitHostPort(c.Admin.Listen); host != "127.0.0.1" {
		t.Errorf("admin.listen %q: keep it on loopback", c.Admin.Listen)
	}
}

// ---- kubernetes ----------------------------------------------------------------

type k8sMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type k8sProbe struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	VolumeMounts    []k8sMount `yaml:"volumeMounts"`
	LivenessProbe   *k8sProbe  `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe  `yaml:"readinessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type k8sVolume struct {
	Name     string `yaml:"name"`
	EmptyDir *struct {
		Medium string `yaml:"medium"`
	} `yaml:"emptyDir"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string `yaml:"secretName"`
		DefaultMode *int   `yaml:"defaultMode"`
	} `yaml:"secret"`
	PVC *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// Deployment
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				InitContainers []k8sContainer `yaml:"initContainers"`
				Containers     []k8sContainer `yaml:"containers"`
				Volumes        []k8sVolume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Service
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// k8sObjects decodes every document of a multi-document YAML file,
// skipping empty ones (such as a leading comment).
func k8sObjects(t *testing.T, data []byte) []k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []k8sObject
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("sidecar.yaml, document %d: %v", len(out)+1, err)
		}
		if len(node.Content) == 0 || node.Content[0].Tag == "!!null" {
			continue
		}
		var obj k8sObject
		if err := node.Decode(&obj); err != nil {
			t.Fatalf("sidecar.yaml, document %d: %v", len(out)+1, err)
		}
		if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
			t.Fatalf("sidecar.yaml, document at line %d: apiVersion %q kind %q name %q", node.Line, obj.APIVersion, obj.Kind, obj.Metadata.Name)
		}
		out = append(out, obj)
	}
	return out
}

func (c *k8sContainer) mount(volume string) *k8sMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == volume {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// mountFor returns the mount of c that holds path.
func (c *k8sContainer) mountFor(path string) *k8sMount {
	for i, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func (c *k8sContainer) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

var placeholderKeyRE = regexp.MustCompile(`ed25519:REPLACE_[A-Za-z0-9_]*`)

func TestKubernetesSidecar(t *testing.T) {
	objs := k8sObjects(t, mustRead(t, filepath.Join("kubernetes", "sidecar.yaml")))
	byKind := map[string][]*k8sObject{}
	for i := range objs {
		byKind[objs[i].Kind] = append(byKind[objs[i].Kind], &objs[i])
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim"} {
		if len(byKind[k]) != 1 {
			t.Fatalf("%d %s objects, want 1", len(byKind[k]), k)
		}
	}
	cm, dep, svc := byKind["ConfigMap"][0], byKind["Deployment"][0], byKind["Service"][0]
	pod := &dep.Spec.Template.Spec
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1 (a pod is one node)", dep.Spec.Replicas)
	}
	if r := pod.SecurityContext.RunAsNonRoot; r == nil || !*r {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}

	var app, sidecar *k8sContainer
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if slices.Contains(c.Command, unitBinary) {
			sidecar = c
		} else {
			app = c
		}
		if r := c.SecurityContext.ReadOnlyRootFilesystem; r == nil || !*r {
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if len(c.Resources.Requests) == 0 || len(c.Resources.Limits) == 0 {
			t.Errorf("container %s: resources %+v, want requests and limits", c.Name, c.Resources)
		}
	}
	if len(pod.Containers) != 2 || app == nil || sidecar == nil {
		t.Fatalf("want an app container and a wandistd container (command %s), got %d containers", unitBinary, len(pod.Containers))
	}

	volumes := map[string]k8sVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}

	// The sidecar's config, from the ConfigMap, parses (with a real key
	// for the placeholder).
	cfgFile := ""
	if i := slices.Index(sidecar.Args, "-c"); len(sidecar.Args) > 1 && sidecar.Args[0] == "run" && i > 0 && i+1 < len(sidecar.Args) {
		cfgFile = sidecar.Args[i+1]
	} else {
		t.Fatalf("wandistd args %q, want run -c FILE", sidecar.Args)
	}
	m := sidecar.mountFor(cfgFile)
	if m == nil || volumes[m.Name].ConfigMap == nil || volumes[m.Name].ConfigMap.Name != cm.Metadata.Name {
		t.Fatalf("%s is not mounted from ConfigMap %s", cfgFile, cm.Metadata.Name)
	}
	text, ok := cm.Data[filepath.Base(cfgFile)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Metadata.Name, filepath.Base(cfgFile))
	}
	_, key := newKey(t)
	cfg, err := Parse([]byte(placeholderKeyRE.ReplaceAllString(text, key)), cfgFile)
	if err != nil {
		t.Fatalf("the ConfigMap's %s: %v", filepath.Base(cfgFile), err)
	}

	// The socket: in a directory of its own (the daemon refuses an
	// emptyDir's world-writable root) on an emptyDir mounted in both
	// containers, where the config puts it and where WANDIST_SOCKET points.
	sm := sidecar.mountFor(cfg.Local.Socket)
	if sm == nil || volumes[sm.Name].EmptyDir == nil {
		t.Fatalf("local.socket %s: not on an emptyDir of the wandistd container", cfg.Local.Socket)
	}
	if filepath.Dir(cfg.Local.Socket) == filepath.Clean(sm.MountPath) {
		t.Errorf("local.socket %s: directly in the emptyDir mounted at %s (world-writable, refused by the daemon), want a directory of its own", cfg.Local.Socket, sm.MountPath)
	}
	am := app.mount(sm.Name)
	if am == nil || am.MountPath != sm.MountPath {
		t.Errorf("the app container does not mount volume %s at %s: %+v", sm.Name, sm.MountPath, am)
	}
	if got := app.env("WANDIST_SOCKET"); got != cfg.Local.Socket {
		t.Errorf("app WANDIST_SOCKET = %q, want %q", got, cfg.Local.Socket)
	}

	// The key: the Secret is mounted 0400 into an init container that
	// copies it to the volume the identity is on.
	var secretVol string
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secretVol = v.Name
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
				t.Errorf("Secret volume %s: defaultMode %v, want 0400", v.Name, v.Secret.DefaultMode)
			}
		}
	}
	km := sidecar.mountFor(cfg.Identity)
	if km == nil || volumes[km.Name].EmptyDir == nil || !km.ReadOnly {
		t.Fatalf("identity %s: not on a read-only emptyDir mount of the wandistd container", cfg.Identity)
	}
	copied := false
	for _, ic := range pod.InitContainers {
		if ic.mount(secretVol) != nil && ic.mount(km.Name) != nil {
			copied = strings.Contains(strings.Join(ic.Command, " "), "chmod 0600 "+filepath.Join(ic.mount(km.Name).MountPath, filepath.Base(cfg.Identity)))
		}
	}
	if secretVol == "" || !copied {
		t.Errorf("no init container copies Secret volume %q to %s with chmod 0600", secretVol, cfg.Identity)
	}

	// The spool is on the PersistentVolumeClaim.
	if pm := sidecar.mountFor(cfg.Spool.Dir); cfg.Spool.Dir == "" || pm == nil || volumes[pm.Name].PVC == nil {
		t.Errorf("spool.dir %q is not on a PersistentVolumeClaim", cfg.Spool.Dir)
	}

	// Probes ask the admin endpoint the config opens, from inside the pod.
	for _, p := range []*k8sProbe{sidecar.LivenessProbe, sidecar.ReadinessProbe} {
		if p == nil || p.Exec == nil {
			t.Fatal("wandistd has no exec liveness/readiness probe")
		}
		want := []string{unitBinary, "status", "--admin", cfg.Admin.Listen}
		if !slices.Equal(p.Exec.Command[:min(len(p.Exec.Command), len(want))], want) {
			t.Errorf("probe %q, want it to start with %q", p.Exec.Command, want)
		}
	}

	// The Service exposes the QUIC port over UDP and the TCP port over TCP,
	// by the container's port names.
	ports := map[string]string{} // protocol -> port
	for _, p := range svc.Spec.Ports {
		for _, cp := range sidecar.Ports {
			if cp.Name == p.TargetPort {
				if cp.Protocol != p.Protocol {
					t.Errorf("Service port %s is %s, container port %s is %s", p.Name, p.Protocol, cp.Name, cp.Protocol)
				}
				ports[p.Protocol] = strconv.Itoa(cp.ContainerPort)
			}
		}
	}
	for proto, addr := range map[string]string{"UDP": cfg.Listen.QUIC, "TCP": cfg.Listen.TCP} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil || ports[proto] != port {
			t.Errorf("Service %s port %q, config listens on %q", proto, ports[proto], addr)
		}
	}
}
