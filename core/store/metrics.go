package store

import "github.com/hbdmon/hbd/core/metrics"

// Metrics returns the store's metric families for /metrics: committed
// samples and transactions, failed writes, the writer's queue and the
// memory the sample rings hold. Values are read at scrape time.
func (s *Store) Metrics() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_samples_ingested_total", Help: "Samples committed to storage.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Stats().SamplesAppended.Load())) }},
		{Name: "hbd_store_transactions_total", Help: "Committed SQLite write transactions.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Stats().Transactions.Load())) }},
		{Name: "hbd_store_write_errors_total", Help: "Failed SQLite write transactions.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Stats().WriteErrors.Load())) }},
		{Name: "hbd_store_write_queue", Help: "Writes waiting for the SQLite writer.",
			Collect: func(emit func(float64, ...string)) { emit(float64(s.QueueLen())) }},
		{Name: "hbd_store_memory_bytes", Help: "Bytes held by in-memory sample history.",
			Collect: func(emit func(float64, ...string)) { b, _ := s.MemoryStats(); emit(float64(b)) }},
	}
}
