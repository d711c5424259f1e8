package worker

import (
	"context"
	"sync"
)

// semaphore bounds a lane's jobs in flight; unlike a buffered channel it can
// be resized while held (a tenant's concurrency changed on reload).
type semaphore struct {
	mu   sync.Mutex
	size int
	used int
	wake chan struct{} // closed when a slot may have become free
}

func newSemaphore(size int) *semaphore {
	return &semaphore{size: size, wake: make(chan struct{})}
}

// acquire waits for a slot or ctx.
func (s *semaphore) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.used < s.size {
			s.used++
			s.mu.Unlock()
			return nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (s *semaphore) release() {
	s.mu.Lock()
	s.used--
	s.broadcastLocked()
	s.mu.Unlock()
}

// resize sets the number of slots; slots in use above a smaller size are
// released as their jobs finish.
func (s *semaphore) resize(size int) {
	s.mu.Lock()
	s.size = size
	s.broadcastLocked()
	s.mu.Unlock()
}

func (s *semaphore) broadcastLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// capacity is the number of slots.
func (s *semaphore) capacity() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}
