package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/store"
)

// ClusterSource is what GET /api/0/cluster reads: the answering daemon's
// node name and the cluster's tables (*store.Store with the daemon's
// node; see core/daemon/cluster.go).
type ClusterSource interface {
	// Node is the answering daemon's name (cluster.node).
	Node() string
	ClusterNodes(ctx context.Context) ([]store.ClusterNode, error)
	ClusterEpochs(ctx context.Context, n int) ([]store.ClusterEpoch, error)
	LeaseNow(ctx context.Context) (g store.LeaseGrant, expired bool, err error)
}

// clusterEpochsListed is how many recent epochs /api/0/cluster lists.
const clusterEpochsListed = 20

// ClusterRoutes returns GET /api/0/cluster (administrators) served from
// src; with src nil (clustering off) it answers 404 saying so.
func (s *Server) ClusterRoutes(src ClusterSource) []Route {
	return []Route{{Method: http.MethodGet, Path: "/api/0/cluster", Access: Admin, Handler: func(c echo.Context) error {
		if src == nil {
			return Errorf(http.StatusNotFound, "Clustering is off (cluster.enabled): this daemon is a single node and always leads")
		}
		return clusterStatus(c, src)
	}}}
}

// ClusterJSON is the answer of GET /api/0/cluster. Times are unix
// seconds (the database's clock); leader is null while the lease is free
// or expired.
type ClusterJSON struct {
	Node   string             `json:"node"`
	Leader *string            `json:"leader"`
	Epoch  int64              `json:"epoch"`
	Since  *float64           `json:"since"`
	Nodes  []ClusterNodeJSON  `json:"nodes"`
	Epochs []ClusterEpochJSON `json:"epochs"`
}

// ClusterNodeJSON is one daemon of /api/0/cluster. heartbeat_flush and
// delivery_backlog are null until that daemon's services report them.
type ClusterNodeJSON struct {
	Node            string   `json:"node"`
	Address         string   `json:"address"`
	Started         float64  `json:"started"`
	LastSeen        float64  `json:"last_seen"`
	Leading         bool     `json:"leading"`
	Epoch           int64    `json:"epoch"`
	HeartbeatFlush  *float64 `json:"heartbeat_flush"`
	DeliveryBacklog *int64   `json:"delivery_backlog"`
}

// ClusterEpochJSON is one epoch of the lease: the node that took it and
// when.
type ClusterEpochJSON struct {
	Epoch int64   `json:"epoch"`
	Node  string  `json:"node"`
	Since float64 `json:"since"`
}

// nodeOf is the node name of a lease holder ("node#suffix").
func nodeOf(holder string) string {
	n, _, _ := strings.Cut(holder, "#")
	return n
}

func clusterStatus(c echo.Context, src ClusterSource) error {
	ctx := c.Request().Context()
	g, expired, err := src.LeaseNow(ctx)
	if err != nil {
		return err
	}
	nodes, err := src.ClusterNodes(ctx)
	if err != nil {
		return err
	}
	epochs, err := src.ClusterEpochs(ctx, clusterEpochsListed)
	if err != nil {
		return err
	}
	out := ClusterJSON{Node: src.Node(), Epoch: g.Epoch, Nodes: []ClusterNodeJSON{}, Epochs: []ClusterEpochJSON{}}
	leader := ""
	if g.Holder != "" && !expired {
		leader = nodeOf(g.Holder)
		since := unixOf(g.Since)
		out.Leader, out.Since = &leader, &since
	}
	for _, n := range nodes {
		j := ClusterNodeJSON{Node: n.Node, Address: n.Address, Started: unixOf(n.Started), LastSeen: unixOf(n.LastSeen),
			// The lease row decides who leads; a node's own row may lag.
			Leading: n.Node == leader, Epoch: n.Epoch, DeliveryBacklog: n.DeliveryBacklog}
		if n.HeartbeatFlush != nil {
			f := unixOf(*n.HeartbeatFlush)
			j.HeartbeatFlush = &f
		}
		out.Nodes = append(out.Nodes, j)
	}
	for _, e := range epochs {
		out.Epochs = append(out.Epochs, ClusterEpochJSON{Epoch: e.Epoch, Node: nodeOf(e.Holder), Since: unixOf(e.Since)})
	}
	return c.JSON(http.StatusOK, out)
}

// unixOf is t in unix seconds, with sub-second precision.
func unixOf(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
