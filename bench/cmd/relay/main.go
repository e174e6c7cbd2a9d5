// Command relay is one hop of the raw TCP relay chain: it accepts
// connections, dials the next hop for each, and forwards length-prefixed
// frames both ways through buffered writers, with no acknowledgements and no
// reliability. It prints "ready ADDR" once it listens.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wandist/wandist/bench/frame"
)

const bufSize = 64 << 10

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept on")
	target := flag.String("target", "", "address of the next hop")
	flag.Parse()
	if *target == "" {
		log.Fatal("relay: -target is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("relay: %v", err)
	}
	fmt.Println("ready", ln.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		ln.Close()
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Printf("relay: accept: %v", err)
			return
		}
		go serve(c, *target)
	}
}

func serve(in net.Conn, target string) {
	out, err := net.Dial("tcp", target)
	if err != nil {
		log.Printf("relay: dial %s: %v", target, err)
		in.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		_ = frame.Forward(bufio.NewWriterSize(dst, bufSize), frame.NewReader(src, bufSize))
		dst.Close()
		src.Close()
	}
	go pipe(out, in)
	pipe(in, out)
}
