set terminal pngcairo size 1000,650 noenhanced font ",11"
set output "docs/img/piad_variants.png"
set title "PIAD variants on the WPAC-converted embedded Fashion-MNIST ViT (4 epochs, no fine-tuning after extraction)"
set xlabel "MACs (paper convention, millions)"
set ylabel "top-1 on the 10k Fashion-MNIST test set (%)"
set key bottom right
set grid
plot "docs/img/piad_variants.dat" index 0 using 1:2 with linespoints lw 2 dt 1 pt 5 title "PIAD (uniform code, loss sensitivity)", "docs/img/piad_variants.dat" index 1 using 1:2 with linespoints lw 2 dt 1 pt 7 title "PIAD + sandwich rule", "docs/img/piad_variants.dat" index 2 using 1:2 with linespoints lw 2 dt 1 pt 9 title "PIAD, top-1 sensitivity", "docs/img/piad_variants.dat" index 3 using 1:2 with linespoints lw 2 dt 2 pt 11 title "plain fine-tune", "docs/img/piad_variants.dat" index 4 using 1:2 with linespoints lw 2 dt 3 pt 13 title "WPAC only"
