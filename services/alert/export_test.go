package alert

// SetMaxPayload makes s budget notifications for a max payload of n bytes
// instead of its connection's, so that a test reaches the server's limit.
func SetMaxPayload(s *Service, n int64) { s.maxPayload = n }
