package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
)

// statuspage.go: the live status page on the admin listener. /ui/ serves
// the page (statuspage/: HTML, CSS and a small script, embedded), which
// polls /ui/state.json once a second (statuspage_state.go) and redraws
// itself. Behind admin.token like the rest of the listener: see page.

//go:embed statuspage
var statusPageFiles embed.FS

// statusPageCookie is the cookie that carries the page's credential.
const statusPageCookie = "wandist_ui"

// withStatusPage serves the status page under /ui/ and everything else
// with api (the admin API, already behind guard.all).
func withStatusPage(d *Daemon, g *adminGuard, api http.Handler) http.Handler {
	assets, err := fs.Sub(statusPageFiles, "statuspage")
	if err != nil {
		panic(err) // the embedded directory is there: go:embed checked it
	}
	ui := http.NewServeMux()
	ui.HandleFunc("GET /ui/state.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, d.pageState())
	})
	ui.Handle("GET /ui/", http.StripPrefix("/ui", http.FileServerFS(assets)))
	root := http.NewServeMux()
	root.Handle("/ui/", g.page(pageHeaders(ui)))
	root.Handle("/", api)
	return root
}

// pageHeaders keeps the page to its own assets and out of frames.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// pageCredential is the status page cookie's value for token: a hash, so
// the cookie never holds the token itself and opens only the page, not
// the API.
func pageCredential(token string) string {
	sum := sha256.Sum256([]byte("wandist status page\x00" + token))
	return hex.EncodeToString(sum[:])
}

// page applies admin.token to the status page, which a browser opens and
// cannot send a bearer header to. Without a token it is open, like the
// read-only API. With one, a request passes with the API's
// "Authorization: Bearer TOKEN" or with the page's cookie; a request with
// ?token=TOKEN gets the cookie (HttpOnly, SameSite=Strict, path /ui/) and
// is sent on to the same URL without the token. Refusals are counted and
// logged as the API's are.
func (g *adminGuard) page(next http.Handler) http.Handler {
	if g.token == "" {
		return next
	}
	bearer := []byte("Bearer " + g.token)
	cred := []byte(pageCredential(g.token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("token") {
			if subtle.ConstantTimeCompare([]byte(q.Get("token")), []byte(g.token)) != 1 {
				g.refuse(r, adminBadToken)
				http.Error(w, "bad admin token in ?token=", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: statusPageCookie, Value: string(cred), Path: "/ui/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), bearer) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		c, err := r.Cookie(statusPageCookie)
		if err == nil && subtle.ConstantTimeCompare([]byte(c.Value), cred) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		reason := adminBadToken
		if got == "" && err != nil {
			reason = adminMissingToken
		}
		g.refuse(r, reason)
		http.Error(w, "missing or bad admin token: open /ui/?token=TOKEN once (it sets a cookie), or send \"Authorization: Bearer TOKEN\"",
			http.StatusUnauthorized)
	})
}
