package daemon

import (
	"crypto/subtle"
	"net/http"
)

// adminGuard applies admin.token to the admin listener, which every local
// user can reach. With a token, every request must carry it as
// "Authorization: Bearer TOKEN". Without one, only the read-only endpoints
// are served: the privileged ones (POST /v1/reload, /debug/pprof/) are
// refused with 403. Each refusal is counted in
// wandist_admin_auth_failures_total{reason} and logged at most once per
// logEvery.
type adminGuard struct {
	d     *Daemon
	token string  // admin.token; "" = none
	log   logOnce // refusal warnings
}

// Reasons of wandist_admin_auth_failures_total.
const (
	adminMissingToken = "missing_token" // a token is set; the request carried none
	adminBadToken     = "bad_token"     // a token is set; the request carried another
	adminTokenNotSet  = "token_not_set" // a privileged endpoint, and no token is set
)

// adminNoToken answers a privileged request when no token is set.
const adminNoToken = "set admin.token to enable reload/pprof over HTTP; SIGHUP reloads without it"

// all checks the token, when one is set, on every request.
func (g *adminGuard) all(next http.Handler) http.Handler {
	if g.token == "" {
		return next
	}
	want := []byte("Bearer " + g.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			reason := adminBadToken
			if got == "" {
				reason = adminMissingToken
			}
			g.refuse(r, reason)
			http.Error(w, "missing or bad admin token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// privileged serves next only when a token is set (all has checked it
// then); without one it answers 403. A nil next serves nothing (404) even
// with a token.
func (g *adminGuard) privileged(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case g.token == "":
			g.refuse(r, adminTokenNotSet)
			http.Error(w, adminNoToken, http.StatusForbidden)
		case next == nil:
			http.NotFound(w, r)
		default:
			next(w, r)
		}
	})
}

// refuse counts a refused request and logs it, once per interval. The
// Authorization header is never logged.
func (g *adminGuard) refuse(r *http.Request, reason string) {
	g.d.metrics.adminAuthFailures.WithLabelValues(reason).Inc()
	g.log.Do(func() {
		path := r.URL.Path
		if len(path) > 100 {
			path = path[:100] + "..."
		}
		g.d.log.Warn("admin request refused", "reason", reason, "remote", r.RemoteAddr, "method", r.Method, "path", path,
			"note", "repeats within 10s are counted in wandist_admin_auth_failures_total, not logged")
	})
}
