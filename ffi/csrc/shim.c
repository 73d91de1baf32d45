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

uint64_t sw_rx_offload_rss_hash(void) { return RTE_ETH_RX_OFFLOAD_RSS_HASH; }

uint64_t sw_rx_offload_timestamp(void) { return RTE_ETH_RX_OFFLOAD_TIMESTAMP; }

uint64_t sw_rx_offload_scatter(void) { return RTE_ETH_RX_OFFLOAD_SCATTER; }

uint32_t sw_mbuf_default_buf_size(void) { return RTE_MBUF_DEFAULT_BUF_SIZE; }

uint64_t sw_mbuf_f_rx_rss_hash(void) { return RTE_MBUF_F_RX_RSS_HASH; }

uint16_t sw_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
