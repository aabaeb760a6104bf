/*
 * driver/blk-int.h - what core.c needs to know about block backends.
 * Not for drivers or users.
 */
#ifndef BLKRIG_BLK_INT_H
#define BLKRIG_BLK_INT_H

#include "common/list.h"
#include "driver/block.h"

/* core.c */
void bd_graph_lock(struct bd_graph *g);
void bd_graph_unlock(struct bd_graph *g);
struct bd_list *bd_graph_blk_list(struct bd_graph *g);
void bd_graph_bump(struct bd_graph *g);

/* blk.c */
struct bd_blk *bd_blk_from_link(struct bd_list *link);
struct bd_blk *bd_blk_find(struct bd_graph *g, const char *name);
/* Serialise a move of b's root edge (bd_replace_node) with requests
 * entering through it. Lock order: graph lock, then root lock. */
void bd_blk_root_lock(struct bd_blk *b);
void bd_blk_root_unlock(struct bd_blk *b);
/* Drain began (true) or ended (false) somewhere in g: hook for users that
 * run their own I/O threads. */
void bd_blk_drain_notify(struct bd_graph *g, bool begin);

#endif
