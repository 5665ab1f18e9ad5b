# Install rules beyond the lbd binary (cmd/CMakeLists.txt installs that into bin/):
#   <prefix>/share/lbd/lb.example.yaml        the reference configuration, every key documented
#   <prefix>/lib/systemd/system/lbd.service   the unit, with ExecStart pointing at <prefix>/bin
# The live config /etc/lbd/lb.yaml is not installed: an install must never overwrite an
# operator's configuration. Copy the example there once (see README, "systemd").
#
#   cmake --install build/release                 # prefix /usr/local
#   systemctl daemon-reload                       # /usr/local/lib/systemd/system is on its path
include(GNUInstallDirs)

install(FILES ${PROJECT_SOURCE_DIR}/deploy/lb.example.yaml DESTINATION ${CMAKE_INSTALL_DATADIR}/lbd)

# deploy/systemd/lbd.service names /usr/local/bin/lbd so that it works when copied by hand;
# the installed copy names the binary where this prefix puts it. That is the prefix given at
# configure time (-DCMAKE_INSTALL_PREFIX=/usr); `cmake --install --prefix` only moves the files.
file(READ ${PROJECT_SOURCE_DIR}/deploy/systemd/lbd.service _lbd_unit)
string(REPLACE "/usr/local/bin/lbd" "${CMAKE_INSTALL_FULL_BINDIR}/lbd" _lbd_unit "${_lbd_unit}")
file(WRITE ${PROJECT_BINARY_DIR}/deploy/lbd.service "${_lbd_unit}")
unset(_lbd_unit)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy/systemd/lbd.service)
install(FILES ${PROJECT_BINARY_DIR}/deploy/lbd.service DESTINATION lib/systemd/system)
