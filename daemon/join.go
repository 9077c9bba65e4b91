package daemon

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/transport"
)

// join asks the member named by Join to admit this node, following
// redirects to the leader, until it is admitted as a learner (the leader
// promotes it once it has caught up) or ctx ends.
func (d *Daemon) join(ctx context.Context) error {
	target, _ := d.cfg.joinTarget() // validated
	req := transport.JoinRequest{ID: d.id, Addr: d.advertised(), Name: PeerName(d.id)}
	var tlsFiles *transport.TLSFiles
	if !d.cfg.Insecure {
		tlsFiles = &transport.TLSFiles{CertFile: d.cfg.TLSCert, KeyFile: d.cfg.TLSKey, CAFile: d.cfg.TLSCA}
	}
	d.status("joining through " + target.Addr)
	for {
		resp, err := transport.Join(ctx, target.Addr, req, tlsFiles, PeerName(target.ID), d.cfg.Insecure, 0)
		switch {
		case err == nil && resp.Accepted:
			for _, p := range resp.Members {
				if p.ID != d.id {
					link{d.tr}.EnsurePeer(p.ID, p.Addr)
				}
			}
			d.log.Info("joined the cluster", zap.String("via", target.Addr))
			return nil
		case err == nil && resp.LeaderAddr != "":
			target = Member{ID: resp.LeaderID, Addr: resp.LeaderAddr}
			continue
		case err != nil:
			d.log.Info("join attempt failed", zap.String("via", target.Addr), zap.Error(err))
		default:
			d.log.Info("join refused", zap.String("via", target.Addr), zap.String("reason", resp.Reason))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// advertised is the peer address other members reach this node at:
// peer_advertise, or the address the transport bound.
func (d *Daemon) advertised() string {
	if d.cfg.PeerAdvertise != "" {
		return d.cfg.PeerAdvertise
	}
	return d.tr.Addr()
}

// answerJoin is a member's side of Join: the leader adds the joiner as a
// learner; anyone else names the leader.
func (d *Daemon) answerJoin(req transport.JoinRequest) (transport.JoinResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.replica.Join(ctx, consensus.Member{ID: req.ID, Addr: req.Addr})
	var nl *consensus.NotLeaderError
	if errors.As(err, &nl) {
		resp := transport.JoinResponse{LeaderID: nl.Leader, Reason: err.Error()}
		for _, p := range d.tr.Peers() {
			if p.ID == nl.Leader {
				resp.LeaderAddr = p.Addr
			}
		}
		return resp, nil
	}
	if err != nil {
		return transport.JoinResponse{Reason: err.Error()}, nil
	}
	members := append(d.tr.Peers(), transport.Peer{ID: d.id, Addr: d.advertised(), Name: PeerName(d.id)})
	return transport.JoinResponse{Accepted: true, Members: members}, nil
}
