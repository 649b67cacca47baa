package container

import (
	"fmt"
	"io"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/image"
)

// CommitOpts are how Commit makes an image.
type CommitOpts struct {
	Tags []string
	// Changes are Dockerfile instructions applied to the image's config.
	Changes []string
	Message string
	Author  string
	// Pause freezes a running container while its changes are read.
	Pause bool
}

// Commit makes an image of container r: its image's layers and one more
// with the container's changes, its config with the container's own and
// o.Changes applied.
func (s *Store) Commit(r *Record, o CommitOpts) (*image.Image, error) {
	if s.images == nil {
		return nil, fmt.Errorf("commit %s: no image store", r.Name)
	}
	base, err := s.images.Resolve(r.Image)
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", r.Name, err)
	}
	// The container's own config becomes the image's, then the changes.
	cfg := ocispec.Image{Platform: base.Config.Platform, Config: base.Config.Config, History: base.Config.History}
	cfg.Config.Env = r.Config.Env
	cfg.Config.Cmd = r.Config.Cmd
	cfg.Config.Entrypoint = r.Config.Entrypoint
	cfg.Config.WorkingDir = r.Config.WorkingDir
	cfg.Config.User = r.Config.User
	cfg.Config.Labels = r.Config.Labels
	for _, ch := range o.Changes {
		if err := image.ApplyChange(&cfg.Config, ch); err != nil {
			return nil, err
		}
	}
	cfg.Author = o.Author
	now := time.Now().UTC()
	cfg.History = append(cfg.History, ocispec.History{Created: &now, Author: cfg.Author, Comment: o.Message,
		CreatedBy: "berth commit " + r.Name})
	if r.State.Running && o.Pause && !r.State.Paused {
		if err := s.rt.Pause(r.ID); err == nil {
			defer func() { _ = s.rt.Resume(r.ID) }()
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.LayerTar(r, pw)) }()
	parent := base.ChainIDs[len(base.ChainIDs)-1]
	layer, err := s.images.AddLayer(parent, pr)
	pr.Close()
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", r.Name, err)
	}
	var layers []image.LayerDesc
	for i, l := range base.Manifest.Layers {
		layers = append(layers, image.LayerDesc{Blob: l, DiffID: base.Config.RootFS.DiffIDs[i]})
	}
	img, err := s.images.Create(cfg, append(layers, layer), o.Tags...)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", r.Name, err)
	}
	return img, nil
}
