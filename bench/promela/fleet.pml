/*
 * gitter-2015 under design `off`, as a Promela model: SPIN's figure beside
 * ours in bench/benchmark.py (rows spin/3x3/off and spin/3x3/off+bug).
 *
 * The fleet of the benchmark's 3x3/off row: 3 app servers sharing one
 * session store, 3 clients, Faye's long-poll heartbeat with T = 45, I = 1,
 * RTT in {0, 2}, retry 5; no tuner (design `off`: every server advises and
 * reaps by level 0 for ever); one server may lose connectivity for 60 s and
 * one client may crash. Written from the project's model: the rules are
 * model/fleet.py's, reduced to what this fleet uses; the constants are what
 * model/params.py derives from model/scenarios/gitter-2015.toml. Like the
 * Python model it keeps no absolute time: timers count down, session ages
 * count up and saturate at Params.age_cap, and a tick jumps to the next
 * deadline, only when no event is due.
 *
 * Property: no_valid_reap, as assertions where a reaper destroys a session
 * (publish, GC, the existence check of a connect): the client must not be
 * valid (held, waiting for its next connect, or retrying after a drop).
 * Design `off` holds it; with -DSEEDED_BUG the publish path and the
 * existence check cut at 1.0 x T instead of 1.6 x T, shorter than a held
 * connect, and SPIN finds the reap.
 *
 * What differs from the Python model (so state counts are close, not equal):
 * - Symmetry: clients are sorted after every step, as `canonical` sorts
 *   them; servers are not renumbered (the Python engine also permutes
 *   servers), so SPIN stores about 5.6 x the states: 5,798,515 for this
 *   fleet, against the Python engine's 1,032,037. With server symmetry off
 *   in the Python model (`loss_servers = [0, 1, 2]`: the same fleet, no
 *   server singled out by the engine's test), the two count the same states
 *   plus one, SPIN's state before the initial placement: measured with 1
 *   client (534 and 535) and 2 clients (99,315 and 99,316).
 * - The second load level of the scenario (40 s -> T 101) is unreachable
 *   under design `off` and is not modelled, but its figures stay where the
 *   Python model uses them: the age cap (its GC cutoff 202, + 1) and the idle
 *   tick (its T, 101), so ages count alike.
 * - A publish or GC sweep is one transition, not one per up server: with no
 *   clock skew every up server judges alike (transitions differ, not states).
 * - Only the rules this fleet can take are here: no tuner, cuts, 401 waits,
 *   rollouts, extra judges or other stacks. A reconnect with no server up
 *   cannot happen (one loss of three servers).
 */

#ifndef CLIENTS
#define CLIENTS 3
#endif
#define SERVERS 3

#define T 45            /* hold of a /meta/connect: level 0's timeout */
#define I 1             /* interval advised with the reply */
#define RTT_MAX 2       /* the RTT choices are {0, RTT_MAX} */
#define RETRY_DELAY 7   /* retry 5 + worst RTT: Params.retry_delay */
#define LOSS 60         /* a lost server is away this long */
#ifdef SEEDED_BUG
#define PUBLISH_AGE 45  /* the bug: publish path and existence check at 1.0 x T */
#else
#define PUBLISH_AGE 72  /* publish path and existence check: ceil(1.6 x T) */
#endif
#define GC_AGE 90       /* GC: 2.0 x T */
#define AGE_CAP 203     /* Params.age_cap (see the header) */
#define IDLE_TICK 101   /* time passes by the longest hold when nothing is scheduled */

/* Client phases: the Python model's HELD, WAITING, RETRY, CRASHED. */
#define HELD 0
#define WAITING 1
#define RETRY 2
#define CRASHED 3
#define NONE 255        /* no server: the Python model's -1 */
#define DUE 255         /* a server's loss ran out; restore is due */

typedef Client {
    byte phase;
    byte server;
    byte timer;         /* time to the client's next event (0: due) */
    bool has;           /* has a session in the shared store */
    byte age            /* that session's age; 0 without one, so no dead field splits states */
};

Client cl[CLIENTS];
byte down[SERVERS];     /* 0: up; else the loss left, or DUE */
byte losses_left = 1;
byte crashes_left = 1;
bool placed;            /* the initial placement is done */

/* Scratch for the steps' loops: `hidden` keeps them out of the state vector. */
hidden byte i, j, delta;
hidden Client tmp;

/* is_valid: held, waiting or retrying, the client does what the protocol
 * asked, on time; only a crashed one does not (no cuts or 401 waits here). */
#define valid(c) (cl[c].phase != CRASHED)
#define up(s) (down[s] == 0)
#define due(c) (cl[c].timer == 0 && cl[c].phase != CRASHED)

/* Guards over every client or server, written out because a guard must be
 * the first statement of a d_step, an expression: no loop there. */
#if CLIENTS == 1
#define ANY_CLIENT(P) (P(0))
#elif CLIENTS == 2
#define ANY_CLIENT(P) (P(0) || P(1))
#else
#define ANY_CLIENT(P) (P(0) || P(1) || P(2))
#endif
#define ANY_SERVER(P) (P(0) || P(1) || P(2))
#define restore_due(s) (down[s] == DUE)
#define past(c, age_) (cl[c].has && cl[c].age >= age_)
#define past_publish(c) past(c, PUBLISH_AGE)
#define past_gc(c) past(c, GC_AGE)
#define ups (up(0) + up(1) + up(2))

/* A reaper destroys client c's session. no_valid_reap: c must not be valid.
 * A held or waiting client's socket closes; it retries, to re-handshake. */
inline reap(c) {
    assert(!valid(c));
    cl[c].has = 0; cl[c].age = 0;
    if
    :: cl[c].phase == HELD || cl[c].phase == WAITING ->
        cl[c].phase = RETRY; cl[c].server = NONE; cl[c].timer = RETRY_DELAY
    :: else -> cl[c].server = NONE
    fi
}

/* A new session on server s, its connect held for T (a handshake and its
 * first connect are one step, as in the Python model). */
inline hold(c, s) {
    cl[c].phase = HELD; cl[c].server = s; cl[c].timer = T; cl[c].has = 1; cl[c].age = 0
}

/* Clients are interchangeable: sort them (insertion sort) so that states
 * that differ by a permutation of clients are stored once. */
#define later(a, b) (a.phase > b.phase || a.phase == b.phase && (a.server > b.server || \
    a.server == b.server && (a.timer > b.timer || a.timer == b.timer && (a.has > b.has || \
    a.has == b.has && a.age > b.age))))
inline sort_clients() {
    i = 1;
    do
    :: i < CLIENTS ->
        tmp.phase = cl[i].phase; tmp.server = cl[i].server; tmp.timer = cl[i].timer;
        tmp.has = cl[i].has; tmp.age = cl[i].age;
        j = i;
        do
        :: j > 0 && later(cl[j - 1], tmp) ->
            cl[j].phase = cl[j - 1].phase; cl[j].server = cl[j - 1].server; cl[j].timer = cl[j - 1].timer;
            cl[j].has = cl[j - 1].has; cl[j].age = cl[j - 1].age;
            j--
        :: else -> break
        od;
        cl[j].phase = tmp.phase; cl[j].server = tmp.server; cl[j].timer = tmp.timer;
        cl[j].has = tmp.has; cl[j].age = tmp.age;
        i++
    :: else -> break
    od;
    i = 0; j = 0
}

/* One client's steps. Every step is one d_step (one transition, as one
 * `step` of the Python model) that ends by sorting the clients; a client
 * process holds no data of its own, so which process runs which client's
 * record does not matter. */
#define C (_pid)
#define reconnect_to(s) d_step { placed && cl[C].phase == RETRY && cl[C].timer == 0 && up(s) -> \
        hold(C, s); sort_clients() }

active [CLIENTS] proctype client()
{
    do
    /* reply: a held connect is answered when its hold runs out; the next
     * connect arrives after the interval plus the round trip (either RTT). */
    :: d_step { placed && cl[C].phase == HELD && cl[C].timer == 0 ->
        cl[C].phase = WAITING; cl[C].timer = I; sort_clients() }
    :: d_step { placed && cl[C].phase == HELD && cl[C].timer == 0 ->
        cl[C].phase = WAITING; cl[C].timer = I + RTT_MAX; sort_clients() }
    /* arrive: the next connect reaches its server. Existence check first: a
     * session past the cutoff is destroyed, the connect refused with 401, and
     * Gitter's client re-handshakes at once on the same server. Either way
     * the client ends up held with a fresh session. */
    :: d_step { placed && cl[C].phase == WAITING && cl[C].timer == 0 ->
        j = cl[C].server;
        if
        :: past_publish(C) -> reap(C)
        :: else -> skip
        fi;
        hold(C, j); sort_clients() }
    /* reconnect: a dropped client re-handshakes through the load balancer,
     * on any up server (its old session was abandoned with the socket). */
    :: reconnect_to(0)
    :: reconnect_to(1)
    :: reconnect_to(2)
    /* crash: a running client disappears; its session lingers for the reapers. */
    :: d_step { placed && crashes_left > 0 && (cl[C].phase == HELD || cl[C].phase == WAITING) ->
        crashes_left--; cl[C].phase = CRASHED; cl[C].server = NONE; cl[C].timer = 0; sort_clients() }
    od
}

/* A reaper sweep on an up server: every session past `age_` goes. */
#define sweep(age_) \
    i = 0; \
    do \
    :: i < CLIENTS -> if :: past(i, age_) -> reap(i) :: else -> skip fi; i++ \
    :: else -> break \
    od; \
    i = 0; sort_clients()

#define lose(s) d_step { placed && losses_left > 0 && up(s) && ups > 1 -> \
        losses_left--; down[s] = LOSS; \
        /* every socket on s drops: the clients re-handshake after the retry delay */ \
        i = 0; \
        do \
        :: i < CLIENTS -> \
            if \
            :: cl[i].server == s -> cl[i].phase = RETRY; cl[i].server = NONE; \
                cl[i].timer = RETRY_DELAY; cl[i].has = 0; cl[i].age = 0 \
            :: else -> skip \
            fi; i++ \
        :: else -> break \
        od; \
        i = 0; sort_clients() }

/* The environment: traffic (publish), GC timers nobody controls, faults and time. */
active proctype environment()
{
    /* The initial steady state: every client's connect just arrived on the
     * server the load balancer chose, any of the three. */
    atomic {
        i = 0;
        do
        :: i < CLIENTS ->
            if
            :: hold(i, 0)
            :: hold(i, 1)
            :: hold(i, 2)
            fi;
            i++
        :: else -> break
        od;
        i = 0; sort_clients(); placed = 1
    }
    do
    /* publish: traffic comes at any moment; the publish path destroys every
     * subscriber past 1.6 x T. Listed only where it would destroy one. */
    :: d_step { ups > 0 && ANY_CLIENT(past_publish) -> sweep(PUBLISH_AGE) }
    /* gc: a sweep may come at any moment on any up server (the Redis lock
     * only keeps two from overlapping), destroying what is past 2 x T. */
    :: d_step { ups > 0 && ANY_CLIENT(past_gc) -> sweep(GC_AGE) }
    /* restore: a lost server's connectivity comes back when its loss runs out. */
    :: d_step { ANY_SERVER(restore_due) ->
        i = 0;
        do
        :: i < SERVERS -> if :: down[i] == DUE -> down[i] = 0 :: else -> skip fi; i++
        :: else -> break
        od;
        i = 0 }
    :: lose(0)
    :: lose(1)
    :: lose(2)
    /* tick: time jumps to the next deadline, only when nothing is due
     * (replies, arrivals, reconnects and restores are urgent). */
    :: d_step { !ANY_CLIENT(due) && !ANY_SERVER(restore_due) ->
        delta = IDLE_TICK;
        i = 0;
        do
        :: i < CLIENTS -> if :: cl[i].phase != CRASHED && cl[i].timer < delta -> delta = cl[i].timer
                             :: else -> skip fi; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < SERVERS -> if :: down[i] > 0 && down[i] != DUE && down[i] < delta -> delta = down[i]
                             :: else -> skip fi; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < CLIENTS ->
            if :: cl[i].phase != CRASHED -> cl[i].timer = cl[i].timer - delta :: else -> skip fi;
            if :: cl[i].has -> cl[i].age = (cl[i].age + delta > AGE_CAP -> AGE_CAP : cl[i].age + delta)
               :: else -> skip fi;
            i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < SERVERS ->
            if :: down[i] > 0 && down[i] != DUE -> down[i] = (down[i] > delta -> down[i] - delta : DUE)
               :: else -> skip fi;
            i++
        :: else -> break
        od;
        i = 0; delta = 0; sort_clients() }
    od
}
