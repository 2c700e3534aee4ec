# install() rules and an exported package so another project can find_package(skd).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS skd skd_io skd_logging skd_warnings EXPORT skdTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/skd DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT skdTargets NAMESPACE skd:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/skd)
configure_package_config_file(cmake/skdConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/skdConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/skd)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/skdConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/skdConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/skdConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/skd)
install(DIRECTORY configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/skd/configs)
