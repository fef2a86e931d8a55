; app.nsi - a real NSIS installer (makensis) for tests/e2e/test_installers.py:
; installs app.exe (tests/apps/spawn.exe) and an uninstaller, with registry
; entries under HKLM and HKCU; the uninstaller relaunches itself from %TEMP%.
Unicode true
Target amd64-unicode
Name "FvmTestApp"
OutFile "setup.exe"
InstallDir "$PROGRAMFILES64\FvmTestApp"
RequestExecutionLevel admin
SilentInstall silent
SilentUnInstall silent

Section "Install"
  SetOutPath "$INSTDIR"
  File "app.exe"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "Software\Microsoft\Windows\CurrentVersion\Uninstall\FvmTestApp" "DisplayName" "FVM Test App"
  WriteRegStr HKLM "Software\Microsoft\Windows\CurrentVersion\Uninstall\FvmTestApp" "UninstallString" "$INSTDIR\uninstall.exe"
  WriteRegStr HKCU "Software\FvmTestApp" "InstallDir" "$INSTDIR"
SectionEnd

Section "Uninstall"
  Delete "$INSTDIR\app.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "Software\Microsoft\Windows\CurrentVersion\Uninstall\FvmTestApp"
  DeleteRegKey HKCU "Software\FvmTestApp"
SectionEnd
