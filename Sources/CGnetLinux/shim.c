#include "CGnetLinux.h"
