/* Paths the config names: absolute, without "." or ".." components, so that what a
 * path names cannot be changed by where the loader runs or by a component that climbs. */
#ifndef USER_PATH_NAME_H
#define USER_PATH_NAME_H

/* NULL when path is acceptable, else what is wrong with it ("is not an absolute path"). */
const char *path_name_problem(const char *path);

#endif
