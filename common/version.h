/*
 * version.h - the one version of agentgate, printed by every program's
 * --version as "PROG VERSION".
 */
#ifndef AG_VERSION_H
#define AG_VERSION_H

#define AGENTGATE_VERSION "0.1.0"

#endif
