package main
import (
 _ "github.com/quic-go/quic-go"
 _ "github.com/hashicorp/yamux"
 _ "golang.org/x/crypto/chacha20poly1305"
 _ "go.yaml.in/yaml/v3"
 _ "github.com/cenkalti/backoff/v5"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "github.com/prometheus/common/expfmt"
 _ "go.uber.org/goleak"
 _ "golang.org/x/sync/errgroup"
 _ "golang.org/x/time/rate"
 _ "github.com/cespare/xxhash/v2"
)
func main(){}
