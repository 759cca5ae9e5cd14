package engine

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/image"
)

// CreateRootfs makes container id's writable layer over the image
// nameOrID names and mounts it, returning where, and the image's config
// (what a runtime spec starts from). RemoveRootfs undoes it.
func (s *Images) CreateRootfs(ctx context.Context, id, nameOrID string) (string, *image.Config, error) {
	img, err := s.get(ctx, nameOrID)
	if err != nil {
		return "", nil, err
	}
	cfg, err := s.readConfig(ctx, img)
	if err != nil {
		return "", nil, err
	}
	st, err := s.Layers()
	if err != nil {
		return "", nil, err
	}
	if err := st.CreateContainerLayer(id, img.ChainID()); err != nil {
		return "", nil, fmt.Errorf("rootfs of %s: %w", id, err)
	}
	mnt, err := st.Mount(id)
	if err != nil {
		_ = st.RemoveContainerLayer(id)
		return "", nil, fmt.Errorf("rootfs of %s: %w", id, err)
	}
	return mnt, cfg, nil
}

// RemoveRootfs unmounts and deletes container id's writable layer.
func (s *Images) RemoveRootfs(id string) error {
	st, err := s.Layers()
	if err != nil {
		return err
	}
	return st.RemoveContainerLayer(id)
}
