/* The DPDK headers spinewatch binds, and C wrappers for their static-inline functions. */
#ifndef SPINEWATCH_SHIM_H
#define SPINEWATCH_SHIM_H

#include <stdint.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ring.h>

uint16_t sw_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
void sw_pktmbuf_free(struct rte_mbuf *m);
void sw_pktmbuf_free_bulk(struct rte_mbuf **m, unsigned int n);
const uint8_t *sw_mbuf_data(const struct rte_mbuf *m);
uint16_t sw_mbuf_data_len(const struct rte_mbuf *m);
uint32_t sw_mbuf_pkt_len(const struct rte_mbuf *m);
uint64_t sw_mbuf_ol_flags(const struct rte_mbuf *m);
uint32_t sw_mbuf_rss_hash(const struct rte_mbuf *m);
/* The RX timestamp dynfield at `offset`, valid when `flag` is in ol_flags. */
uint64_t sw_mbuf_timestamp(const struct rte_mbuf *m, int offset);
/* One call per burst: the first segment's data pointer and length, the frame length, and
 * (with ts_offset >= 0) the RX timestamp or 0, of each of n mbufs; prefetches each frame's
 * first cache line for the decoder. */
void sw_burst_meta(struct rte_mbuf *const *m, uint16_t n, const uint8_t **data, uint16_t *data_len,
		   uint32_t *pkt_len, int ts_offset, uint64_t ts_flag, uint64_t *ts);
uint64_t sw_rdtsc(void);
uint64_t sw_tsc_hz(void);
int sw_errno(void);
unsigned sw_lcore_id(void);
/* RSS hash-type sets: RTE_ETH_RSS_IP | TCP | UDP, from macros bindgen cannot evaluate. */
uint64_t sw_rss_hf_default(void);
uint64_t sw_rss_hf_ip(void);
uint64_t sw_mbuf_f_rx_rss_hash(void);
uint16_t sw_mbuf_nb_segs(const struct rte_mbuf *m);
uint64_t sw_rx_offload_rss_hash(void);
uint64_t sw_rx_offload_timestamp(void);
uint64_t sw_rx_offload_scatter(void);
uint32_t sw_mbuf_default_buf_size(void);

#endif
