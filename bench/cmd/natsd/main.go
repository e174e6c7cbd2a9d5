// Command natsd is a nats-server (v2, embedded from its Go module) with a
// gateway, for the side-by-side benchmark: one natsd per cluster, joined by
// gateways. It prints "ready" when it takes clients and "gateways up" when
// its gateways to every remote cluster are connected (outbound).
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	name := flag.String("name", "", "this cluster's gateway name")
	host := flag.String("host", "127.0.0.1", "address the client and gateway ports listen on")
	port := flag.Int("port", 0, "client port (on -host)")
	gwPort := flag.Int("gw-port", 0, "gateway port (on -host)")
	advertise := flag.String("advertise", "", "gateway address other clusters dial (host:port), if not the listen address")
	remotes := flag.String("remotes", "", "remote gateways: NAME=HOST:PORT,...")
	flag.Parse()
	if *name == "" || *port == 0 || *gwPort == 0 {
		log.Fatal("natsd: -name, -port and -gw-port are required")
	}
	opts := &server.Options{
		ServerName: *name,
		Host:       *host,
		Port:       *port,
		NoSigs:     true,
		Gateway: server.GatewayOpts{
			Name:      *name,
			Host:      *host,
			Port:      *gwPort,
			Advertise: *advertise,
		},
	}
	n := 0
	for r := range strings.SplitSeq(*remotes, ",") {
		if r == "" {
			continue
		}
		rn, addr, ok := strings.Cut(r, "=")
		if !ok {
			log.Fatalf("natsd: -remotes: %q is not NAME=HOST:PORT", r)
		}
		u, err := url.Parse("nats://" + addr)
		if err != nil {
			log.Fatalf("natsd: -remotes: %q: %v", r, err)
		}
		opts.Gateway.Gateways = append(opts.Gateway.Gateways, &server.RemoteGatewayOpts{Name: rn, URLs: []*url.URL{u}})
		n++
	}
	s, err := server.NewServer(opts)
	if err != nil {
		log.Fatalf("natsd: %v", err)
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		log.Fatal("natsd: not ready for connections after 30s")
	}
	fmt.Println("ready")
	go func() {
		for s.NumOutboundGateways() < n {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println("gateways up")
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
}
