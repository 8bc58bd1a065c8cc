// Package webui holds hbd's web pages and their static assets, embedded in
// the binary: plain HTML templates, one stylesheet and vanilla JavaScript,
// with no CDN, web font or build step.
//
// The files are laid out as
//
//	pages/layout.html      the shared frame (head, nav bar), template "layout"
//	pages/<name>.html      one page, defining "content"
//	static/...             CSS, JS and icons served under /static/
//
// Package api turns them into routes (api.Server.PageRoutes); webui imports
// nothing of the daemon, so the dependency points one way.
//
// The pages never put data into innerHTML: every host name, metric value
// and message is set with textContent, since agents and users choose them.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed pages static
var files embed.FS

// Pages lists the page names: pages/<name>.html, served at /<name>.
var Pages = []string{"login", "live", "plugins", "alerts", "channels", "profile"}

// FS returns the embedded files (pages/ and static/).
func FS() fs.FS { return files }

// HTTPFileSystem returns the embedded files as an http.FileSystem.
func HTTPFileSystem() http.FileSystem { return http.FS(files) }
