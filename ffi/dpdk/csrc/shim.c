#include "shim.h"

uint16_t sw_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

void sw_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

void sw_pktmbuf_free_bulk(struct rte_mbuf **m, unsigned int n) { rte_pktmbuf_free_bulk(m, n); }

const uint8_t *sw_mbuf_data(const struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, const uint8_t *); }

uint16_t sw_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }

uint32_t sw_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }

uint64_t sw_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }

uint32_t sw_mbuf_rss_hash(const struct rte_mbuf *m) { return m->hash.rss; }

uint64_t sw_mbuf_timestamp(const struct rte_mbuf *m, int offset)
{
	return *RTE_MBUF_DYNFIELD(m, offset, const rte_mbuf_timestamp_t *);
}

uint64_t sw_rdtsc(void) { return rte_rdtsc(); }

uint64_t sw_tsc_hz(void) { return rte_get_tsc_hz(); }

int sw_errno(void) { return rte_errno; }

unsigned sw_lcore_id(void) { return rte_lcore_id(); }

uint64_t sw_rss_hf_default(void) { return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP; }
uint64_t sw_rss_hf_ip(void) { return RTE_ETH_RSS_IP; }

uint64_t sw_rx_offload_rss_hash(void) { return RTE_ETH_RX_OFFLOAD_RSS_HASH; }

uint64_t sw_rx_offload_timestamp(void) { return RTE_ETH_RX_OFFLOAD_TIMESTAMP; }

uint64_t sw_rx_offload_scatter(void) { return RTE_ETH_RX_OFFLOAD_SCATTER; }

uint32_t sw_mbuf_default_buf_size(void) { return RTE_MBUF_DEFAULT_BUF_SIZE; }

uint64_t sw_mbuf_f_rx_rss_hash(void) { return RTE_MBUF_F_RX_RSS_HASH; }

uint16_t sw_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }

void sw_burst_meta(struct rte_mbuf *const *m, uint16_t n, const uint8_t **data, uint16_t *data_len,
		   uint32_t *pkt_len, int ts_offset, uint64_t ts_flag, uint64_t *ts)
{
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *b = m[i];
		const uint8_t *d = rte_pktmbuf_mtod(b, const uint8_t *);
		rte_prefetch0(d);
		data[i] = d;
		data_len[i] = b->data_len;
		pkt_len[i] = b->pkt_len;
		ts[i] = (ts_offset >= 0 && (b->ol_flags & ts_flag)) ?
			*RTE_MBUF_DYNFIELD(b, ts_offset, const rte_mbuf_timestamp_t *) : 0;
	}
}
